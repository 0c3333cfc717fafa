from django.apps import AppConfig


class JudgesConfig(AppConfig):
    name = "arena.judges"
    label = "judges"
    verbose_name = "Judges"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from arena.exports.filters import BattleSource, battle_sources
        from arena.judges import export

        if not battle_sources:  # the battles export's source filter: humans, judge:NAME, all
            battle_sources.append(BattleSource(export.parse_source, export.judges_for, export.battle_lines))
