"""Dashboard URLs of the measuring app."""

from django.urls import path

from experiments import views_experiments

app_name = "experiments"
urlpatterns = [
    path("ab/", views_experiments.experiment_list, name="experiment-list"),
    path("ab/new/", views_experiments.experiment_new, name="experiment-new"),
    path("ab/sample-size/", views_experiments.experiment_sample_size, name="experiment-sample-size"),
    path("ab/<int:pk>/", views_experiments.experiment_detail, name="experiment-detail"),
    path("ab/<int:pk>/refresh/", views_experiments.experiment_refresh, name="experiment-refresh"),
    path("ab/<int:pk>/<str:action>/", views_experiments.experiment_action, name="experiment-action"),
]
