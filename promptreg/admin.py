from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from promptreg.models import ApiKey, Label, LabelMove, Prompt, PromptVersion, Review, ReviewPolicy, Tag


@admin.register(Prompt)
class PromptAdmin(SimpleHistoryAdmin):
    list_display = ("name", "prompt_type", "owner", "retired_at")
    list_filter = ("prompt_type",)
    search_fields = ("name", "description")


@admin.register(PromptVersion)
class PromptVersionAdmin(SimpleHistoryAdmin):
    list_display = ("prompt", "number", "kind", "status", "created_by", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("prompt__name", "commit_message")

    def get_readonly_fields(self, request, obj=None):
        # Versions are immutable: only the review status may change.
        if obj is None:
            return ()
        return [f.name for f in self.model._meta.fields if f.name != "status"]


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


@admin.register(Review)
class ReviewAdmin(SimpleHistoryAdmin):
    list_display = ("version", "reviewer", "decision", "created_at")


@admin.register(ReviewPolicy)
class ReviewPolicyAdmin(SimpleHistoryAdmin):
    list_display = ("prompt_type", "requires_review", "requires_eval", "min_approvals")


@admin.register(ApiKey)
class ApiKeyAdmin(SimpleHistoryAdmin):
    list_display = ("name", "public_id", "scopes", "created_at", "revoked_at")
    exclude = ("secret_hash",)
    readonly_fields = ("public_id",)


admin.site.register(Tag)
