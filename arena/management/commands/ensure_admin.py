"""Create the staff account once: password from ARENA_ADMIN_PASSWORD, or a random one printed once."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser (default name: admin) unless it exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("ARENA_ADMIN_USER", "admin"))

    def handle(self, *args, username: str, **options):
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            self.stdout.write(f"Admin account {username!r} already exists.")
            return
        password = os.environ.get("ARENA_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if "ARENA_ADMIN_PASSWORD" in os.environ:
            self.stdout.write(
                self.style.SUCCESS(f"Admin account {username!r} created (password from ARENA_ADMIN_PASSWORD).")
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"Admin account {username!r} created with password: {password}"))
            self.stdout.write("This password is shown only once; change it in the admin.")
