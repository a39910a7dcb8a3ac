from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from simple_history.admin import SimpleHistoryAdmin

from promptreg import services
from promptreg.exceptions import Forbidden
from promptreg.models import (
    ApiKey,
    Label,
    LabelMove,
    MoveVia,
    PolicyChange,
    Prompt,
    PromptVersion,
    Review,
    ReviewPolicy,
    Scope,
    Tag,
)


def _policy_service(call):
    """The admin's own permissions are not enough for a policy change: the service checks the role and records it."""
    try:
        return call()
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None


@admin.register(Prompt)
class PromptAdmin(SimpleHistoryAdmin):
    list_display = ("name", "prompt_type", "owner", "retired_at")
    list_filter = ("prompt_type",)
    search_fields = ("name", "description")

    def save_model(self, request, obj, form, change):
        if change and "prompt_type" in form.changed_data:
            new_type = obj.prompt_type
            obj.prompt_type = form.initial["prompt_type"]
            super().save_model(request, obj, form, change)
            actor = services.Actor(via=MoveVia.BUTTON, user=request.user)
            _policy_service(
                lambda: services.prompt_set_type(
                    name=obj.name, prompt_type=new_type, actor=actor, reason="changed in the Django admin"
                )
            )
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)


@admin.register(PromptVersion)
class PromptVersionAdmin(SimpleHistoryAdmin):
    list_display = ("prompt", "number", "kind", "status", "created_by", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("prompt__name", "commit_message")

    # Versions are immutable, and their review status moves only through reviews (the dashboard's
    # four-eyes rule): the admin shows them, it does not edit or add them.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Label)
class LabelAdmin(SimpleHistoryAdmin):
    list_display = ("prompt", "name", "version", "updated_at")
    readonly_fields = ("prompt", "name", "version", "updated_at")


@admin.register(LabelMove)
class LabelMoveAdmin(admin.ModelAdmin):
    list_display = ("prompt", "label", "from_version", "to_version", "is_rollback", "is_override", "via", "created_at")
    list_filter = ("via", "is_rollback", "is_override")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnly:
    """A log: shown in the admin, never added to, edited or deleted there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Review)
class ReviewAdmin(ReadOnly, SimpleHistoryAdmin):
    """Read-only: a review added here could approve a version in someone else's name."""

    list_display = ("version", "reviewer", "decision", "created_at")


@admin.register(ReviewPolicy)
class ReviewPolicyAdmin(SimpleHistoryAdmin):
    list_display = ("prompt_type", "requires_review", "requires_eval", "min_approvals", "protected_labels")

    def save_model(self, request, obj, form, change):
        """Through the service: Reviewer or Admin role, and a record in every affected prompt's audit trail."""
        actor = services.Actor(via=MoveVia.BUTTON, user=request.user)
        changes = {f: form.cleaned_data[f] for f in services.POLICY_FIELDS if f in form.cleaned_data}
        policy = _policy_service(
            lambda: services.review_policy_update(
                prompt_type=obj.prompt_type, actor=actor, changes=changes, reason="changed in the Django admin"
            )
        )
        obj.pk = policy.pk


@admin.register(PolicyChange)
class PolicyChangeAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("created_at", "area", "prompt", "prompt_type", "before", "after", "actor", "api_key", "via")
    list_filter = ("area", "via")


class ApiKeyForm(forms.ModelForm):
    """Scopes as checkboxes of the known scopes (not raw JSON), checked as `ApiKey.issue` checks them."""

    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        exclude = ("secret_hash",)  # noqa: DJ006 — every field but the secret hash, on purpose

    def clean(self):
        data = super().clean()
        assert data is not None, "ModelForm.clean returns the cleaned data"
        if "scopes" in data:
            problem = ApiKey.issue_problem(
                scopes=data["scopes"], owner=data.get("owner"), gate_override=data.get("gate_override", False)
            )
            if problem:
                raise forms.ValidationError(problem)
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(SimpleHistoryAdmin):
    """Adding a key issues a real one (`ApiKey.issue`, owned by the signed-in user unless another owner is
    chosen) and answers with its secret, shown that once; only its hash is stored."""

    form = ApiKeyForm
    list_display = ("name", "public_id", "owner", "scopes", "gate_override", "created_at", "revoked_at")
    exclude = ("secret_hash",)
    readonly_fields = ("public_id",)

    def get_fields(self, request, obj=None):
        return ("name", "scopes", "owner", "gate_override") if obj is None else super().get_fields(request, obj)

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        key, request.new_api_key_secret = ApiKey.issue(
            name=data["name"],
            scopes=data["scopes"],
            owner=data["owner"],
            gate_override=data["gate_override"],
            created_by=request.user,
        )
        obj.pk = key.pk  # the admin logs and answers about `obj`: make it the issued key
        obj.refresh_from_db()
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "key": obj,
            "secret": request.new_api_key_secret,
            "title": "API key created",
        }
        response = TemplateResponse(request, "admin/promptreg/apikey/created.html", context)
        add_never_cache_headers(response)  # the secret must not be kept by a browser or proxy cache
        return response


admin.site.register(Tag)
