from django.apps import AppConfig


class RolloutConfig(AppConfig):
    name = "rollout"
    verbose_name = "Serving and rollout"

    def ready(self) -> None:
        from rollout import serving  # noqa: F401  (connects the cache invalidation receivers)
