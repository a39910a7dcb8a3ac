"""Roles as groups, and the team's default review policy per prompt type."""

from django.db import migrations

ROLES = ("Author", "Reviewer", "Deployer", "Admin")
# (prompt type, needs peer review, needs eval gate): the team's practice table.
POLICIES = (
    ("system", True, False),
    ("agent-planning", True, False),
    ("rag-query", True, True),
    ("extraction", False, True),
    ("output-format", False, True),
)


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    ReviewPolicy = apps.get_model("promptreg", "ReviewPolicy")
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    for prompt_type, review, evaluation in POLICIES:
        ReviewPolicy.objects.get_or_create(
            prompt_type=prompt_type,
            defaults={"requires_review": review, "requires_eval": evaluation, "min_approvals": 1},
        )


class Migration(migrations.Migration):
    dependencies = [("promptreg", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
