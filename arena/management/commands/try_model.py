"""Send one short prompt to a model entry through its backend and print the answer or the error."""

from django.core.management.base import BaseCommand, CommandError

from arena.models import ModelEntry
from arena.services import model_trials


class Command(BaseCommand):
    help = "Try a model: one prompt through its backend (as the admin's Test this model), answer or error."

    def add_arguments(self, parser):
        parser.add_argument("model", help="the model entry's name")
        parser.add_argument("--prompt", default=model_trials.TRIAL_PROMPT)

    def handle(self, *args, model: str, prompt: str, **options):
        entry = ModelEntry.objects.filter(name=model).first()
        if entry is None:
            raise CommandError(f"No model named {model!r}.")
        trial = model_trials.try_model(entry, prompt)
        if not trial.ok:
            raise CommandError(f"{entry}: {trial.text}")
        self.stdout.write(trial.text)
        self.stderr.write(f"{entry}: {trial.latency_s:.2f} s, {trial.completion_tokens} tokens")
