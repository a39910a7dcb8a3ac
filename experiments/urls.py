"""Dashboard URLs of the measuring app (namespace `experiments`, mounted at /experiments/)."""

from django.urls import path

import promptreg.urls_web  # noqa: F401  (registers the <prompt:…> path converter)
from experiments import views_evaluation as ev
from experiments import views_experiments, views_playground, views_provider

app_name = "experiments"
urlpatterns = [
    path("ab/", views_experiments.experiment_list, name="experiment-list"),
    path("ab/new/", views_experiments.experiment_new, name="experiment-new"),
    path("ab/sample-size/", views_experiments.experiment_sample_size, name="experiment-sample-size"),
    path("ab/<int:pk>/", views_experiments.experiment_detail, name="experiment-detail"),
    path("ab/<int:pk>/refresh/", views_experiments.experiment_refresh, name="experiment-refresh"),
    path("ab/<int:pk>/<str:action>/", views_experiments.experiment_action, name="experiment-action"),
    # Offline evaluation: datasets, runs, a version's evaluation.
    path("datasets/", ev.dataset_list, name="dataset-list"),
    path("datasets/<int:pk>/", ev.dataset_detail, name="dataset-detail"),
    path("datasets/<int:pk>/edit/", ev.dataset_edit, name="dataset-edit"),
    path("datasets/<int:pk>/upload/", ev.dataset_upload, name="dataset-upload"),
    path("datasets/<int:pk>/export.<str:fmt>", ev.dataset_export, name="dataset-export"),
    path("datasets/<int:pk>/history/", ev.dataset_history, name="dataset-history"),
    path("datasets/<int:pk>/cases/new/", ev.case_edit, name="case-new"),
    path("datasets/<int:pk>/cases/<int:case_pk>/", ev.case_edit, name="case-edit"),
    path("datasets/<int:pk>/cases/<int:case_pk>/remove/", ev.case_remove, name="case-remove"),
    path("playground/compare/", views_playground.playground_compare, name="playground-compare"),
    path("playground/<uuid:group>/", views_playground.playground_result, name="playground-result"),
    path("provider/", views_provider.provider_settings, name="provider"),
    path("provider/test/", views_provider.provider_check, name="provider-test"),
    path("runs/<int:pk>/", ev.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress/", ev.run_progress, name="run-progress"),
    path("runs/<int:pk>/cancel/", ev.run_cancel, name="run-cancel"),
    path("prompts/<prompt:name>/-/dataset/", ev.prompt_dataset, name="prompt-dataset"),
    path("prompts/<prompt:name>/-/v/<int:number>/", ev.version_evaluation, name="version-evaluation"),
    path("prompts/<prompt:name>/-/v/<int:number>/run/", ev.version_run, name="version-run"),
    path("prompts/<prompt:name>/-/v/<int:number>/structure/", ev.version_structure, name="version-structure"),
]
