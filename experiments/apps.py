from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Evaluations and experiments"

    def ready(self) -> None:
        from django.conf import settings

        from experiments import audit, evaluation, receivers  # noqa: F401  (connects the signal receivers)
        from experiments import experiments  # noqa: F401  (stops experiments whose label moved under them)
        from promptreg.audit import register_source
        from promptreg.gates import register_gate
        from promptreg.panels import register_prompt_panel, register_version_panel

        register_gate("eval", evaluation.eval_gate)
        register_source(audit.KIND, audit.DESCRIPTION, audit.experiment_events)
        register_version_panel("experiments/evaluation/_version_panel.html", evaluation.version_panel_context)
        register_prompt_panel("experiments/evaluation/_prompt_panel.html", evaluation.dataset_picker_context)
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "evaluation-resume-stale",
            {"task": "experiments.evaluation_resume_stale", "schedule": float(settings.EVAL_STALE_SECONDS)},
        )
