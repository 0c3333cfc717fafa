"""Schema changes for issue 14, finding 1 (blind hand-out)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("arena", "0008_admin_backend_choices")]

    operations = []
