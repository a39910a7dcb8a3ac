from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Evaluations and experiments"

    def ready(self) -> None:
        from experiments import audit, gates, receivers  # noqa: F401  (receivers connects the signal receivers)
        from experiments.views_playground import panel_context as playground_panel_context
        from promptreg.audit import register_source
        from promptreg.files import register_eval_score
        from promptreg.gates import register_gate
        from promptreg.panels import register_prompt_panel, register_version_panel

        register_gate("eval", gates.eval_gate)
        register_eval_score(gates.headline_score)
        register_source(audit.KIND, audit.DESCRIPTION, audit.experiment_events)
        register_version_panel("experiments/evaluation/_version_panel.html", gates.version_panel_context)
        register_version_panel("experiments/playground/_panel.html", playground_panel_context)
        register_prompt_panel("experiments/evaluation/_prompt_panel.html", gates.dataset_picker_context)
