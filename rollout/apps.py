from django.apps import AppConfig


class RolloutConfig(AppConfig):
    name = "rollout"
    verbose_name = "Serving and rollout"

    def ready(self) -> None:
        from rollout import entries, experiment_routing, receivers  # noqa: F401  (receivers connects the signal receivers)

        entries.set_experiment_router(experiment_routing.resolve, experiment_routing.assign)
