from django.apps import AppConfig


class RolloutConfig(AppConfig):
    name = "rollout"
    verbose_name = "Serving and rollout"

    def ready(self) -> None:
        from rollout import experiment_routing, receivers, serving  # noqa: F401  (receivers connects the signal receivers)

        serving.set_experiment_router(experiment_routing.resolve, experiment_routing.assign)
