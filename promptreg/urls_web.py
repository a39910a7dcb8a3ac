"""Dashboard URLs. Prompt names may contain '/', so actions sit after a '/-/' marker
(a segment a prompt name can never have)."""

from django.urls import path

from promptreg.views import audit, authoring, keys, labels, prompts, reviews, versions

app_name = "promptreg"
urlpatterns = [
    path("", prompts.prompt_list, name="prompt-list"),
    path("new/", authoring.prompt_new, name="prompt-new"),
    path("preview/", authoring.authoring_preview, name="authoring-preview"),
    path("reviews/", reviews.review_inbox, name="review-inbox"),
    path("reviews/count/", reviews.review_count, name="review-count"),
    path("audit/", audit.audit_list, name="audit"),
    path("keys/", keys.api_keys, name="api-keys"),
    path("keys/<int:pk>/revoke/", keys.api_key_revoke, name="api-key-revoke"),
    path("prompts/<prompt:name>/", prompts.prompt_detail, name="prompt-detail"),
    path("prompts/<prompt:name>/-/new/", authoring.version_new, name="version-new"),
    path("prompts/<prompt:name>/-/compare/", versions.version_diff, name="version-diff"),
    path("prompts/<prompt:name>/-/rollback/", versions.prompt_rollback, name="prompt-rollback"),
    path("prompts/<prompt:name>/-/retire/", prompts.prompt_retire, name="prompt-retire"),
    path("prompts/<prompt:name>/-/restore/", prompts.prompt_restore, name="prompt-restore"),
    path("prompts/<prompt:name>/-/audit/", audit.prompt_audit, name="prompt-audit"),
    path("prompts/<prompt:name>/-/labels/", labels.prompt_labels, name="prompt-labels"),
    path("prompts/<prompt:name>/-/v/<int:number>/", versions.version_detail, name="version-detail"),
    path("prompts/<prompt:name>/-/v/<int:number>/submit/", reviews.version_submit, name="version-submit"),
    path("prompts/<prompt:name>/-/v/<int:number>/review/", reviews.version_review, name="version-review"),
    path("prompts/<prompt:name>/-/v/<int:number>/activate/", versions.version_activate, name="version-activate"),
    path("prompts/<prompt:name>/-/v/<int:number>/tags/", versions.version_tags, name="version-tags"),
]
