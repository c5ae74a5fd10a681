"""creneau staff-otp USER: a new second factor for a staff account (authenticator app and
backup codes), printed once. The first one of each admin after `createsuperuser`, and the way
back for one who lost theirs."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from creneau.second_factor import second_factor_issue


class Command(BaseCommand):
    help = (
        "Issue a new second factor (authenticator app and backup codes) for a staff account; "
        "the previous one stops working."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No account named {username!r}.")
        if not user.is_staff:
            raise CommandError(
                f"{username!r} is not a staff account (an operator's agent gets its codes in "
                "the admin, Agents → reset the second factor)."
            )
        factor = second_factor_issue(user=user)
        self.stdout.write(
            "\n".join(
                [
                    f"Second factor of {username} (shown once; the previous one no longer works):",
                    f"  authenticator app: {factor.otp_uri}",
                    f"  or type the secret: {factor.otp_secret}",
                    f"  backup codes (each works once): {' '.join(factor.backup_codes)}",
                ]
            )
        )
