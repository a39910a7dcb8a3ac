from django.apps import AppConfig


class PromptregConfig(AppConfig):
    name = "promptreg"
    verbose_name = "Prompt registry"

    def ready(self) -> None:
        from promptreg import composition_audit, converters

        converters.register()
        composition_audit.register()
