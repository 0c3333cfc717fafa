"""Routes of live battles (voters write the prompt); filled in by the live-battle feature."""

urlpatterns: list = []
