from django.apps import AppConfig


class RolloutConfig(AppConfig):
    name = "rollout"
    verbose_name = "Serving and rollout"

    def ready(self) -> None:
        from rollout import experiment_routing, receivers, serving, webhooks  # noqa: F401  (serving, receivers and webhooks connect signal receivers)

        serving.set_experiment_router(experiment_routing.resolve, experiment_routing.assign)
