"""The playground: run a version (or the authoring form's unsaved draft) on sample values against the provider, and
compare the outputs of several versions on the same values.

`playground_run` is the one call, used synchronously by `POST /api/v1/prompts/{name}/run` and by the worker for the
dashboard's compares (`compare_start` → one `experiments.playground_run` task per version → `run_execute`). A run
sends one request (no retries) bounded by `PLAYGROUND_TIMEOUT`, with the model and request parameters of the
version's config overridden by the run's. It never moves a label and records nothing: runs are kept
`PLAYGROUND_KEEP_HOURS` for the page that polls them, then deleted by the next compare.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from experiments.llm import (
    NO_PROVIDER,
    REQUEST_PARAMS,
    LLMClient,
    LLMConfig,
    ProviderError,
    param_problem,
    provider_effective,
)
from experiments.models import PlaygroundRun, PlaygroundState
from experiments.runner import text_role
from promptreg import broker, composition, permissions
from promptreg.diff import Segment, TextDiff, word_diff
from promptreg.exceptions import InvalidInput, RegistryError
from promptreg.models import Prompt, PromptVersion
from promptreg.templating import CompileError, Template

OVERRIDABLE = ("model", *REQUEST_PARAMS)
MAX_VERSIONS = 4


class ProviderNotConfigured(RegistryError):
    """A setup problem for an Admin, not a provider failure: its message is NO_PROVIDER, saying where to set it."""

    code = "provider_not_configured"
    status = 503


@dataclass(frozen=True)
class RunResult:
    output: str
    model: str
    latency_ms: float
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None  # None unless the model has a price in LLM_PRICES and the provider counted the tokens
    version: int | None  # None for an unsaved draft

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "model": self.model,
            "latency_ms": self.latency_ms,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            "cost_usd": self.cost_usd,
            "version": self.version,
        }


def check_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The overrides, or InvalidInput naming a setting the provider would not be sent."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise InvalidInput(
            f"config: '{unknown[0]}' cannot be overridden; the settings a run may override are "
            f"{', '.join(OVERRIDABLE)}.",
            code="invalid_config",
        )
    return check_params(overrides)


def check_params(config: dict[str, Any]) -> dict[str, Any]:
    """`config`, or InvalidInput (`invalid_config`) naming a model or request parameter out of its range."""
    problem = next(filter(None, (param_problem(k, config[k]) for k in OVERRIDABLE if k in config)), None)
    if problem:
        raise InvalidInput(f"config: {problem}.", code="invalid_config")
    return config


def cost_usd(model: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
    """Cost = (input tokens × input price + output tokens × output price) / 10⁶, prices per million tokens from
    LLM_PRICES; None when the model has no price or the provider did not count the tokens."""
    price = settings.LLM_PRICES.get(model)
    if not price or input_tokens is None or output_tokens is None:
        return None
    return (input_tokens * float(price.get("input", 0)) + output_tokens * float(price.get("output", 0))) / 1_000_000


def playground_run(
    *, version: PromptVersion, variables: dict[str, Any], overrides: dict[str, Any] | None = None
) -> RunResult:
    """Compile `version` (saved or not) with `variables` and send it to the provider once.

    Included prompts (`@@@langfusePrompt:…@@@`) are resolved first, as a fetch would. Raises InvalidInput (code
    `invalid_variables` / `invalid_config`, or a composition error's code) for input that cannot run,
    ProviderNotConfigured when there is no provider,
    ProviderTimeout when the provider did not answer within PLAYGROUND_TIMEOUT, ProviderError (a sentence) for any
    other failure.
    """
    config = {**(version.config or {}), **check_overrides(overrides)}
    # What an app would get: included prompts resolved as the registry stands now (CompositionError is InvalidInput).
    resolved = composition.resolve_body(
        version.prompt.name, version.kind, version.body, version if version.pk else None
    )
    try:
        compiled = Template(version.kind, resolved.body).compile(**(variables or {})).prompt
    except CompileError as exc:
        raise InvalidInput(str(exc), code="invalid_variables", details={"missing": exc.missing}) from None
    messages = [{"role": text_role(version.prompt), "content": compiled}] if isinstance(compiled, str) else compiled
    llm = LLMConfig.for_version(config)
    if not llm.base_url:
        raise ProviderNotConfigured(NO_PROVIDER)
    llm = LLMConfig(
        base_url=llm.base_url,
        api_key=llm.api_key,
        model=llm.model,
        timeout=settings.PLAYGROUND_TIMEOUT,
        max_retries=0,  # one bounded attempt: the person (or script) waiting decides whether to try again
        concurrency=1,
        params=llm.params,
    )
    with LLMClient(llm) as client:
        answer = client.chat(messages)
    return RunResult(
        output=answer.content,
        model=llm.model,
        latency_ms=answer.latency_ms,
        input_tokens=answer.prompt_tokens,
        output_tokens=answer.completion_tokens,
        cost_usd=cost_usd(llm.model, answer.prompt_tokens, answer.completion_tokens),
        version=version.number,
    )


# ---------------------------------------------------------------- compares on the dashboard


@dataclass(frozen=True)
class Draft:
    """The authoring form's unsaved template."""

    kind: str
    body: Any
    config: dict[str, Any]
    prompt_type: str = ""  # as posted by the form; the prompt's own type when empty


def _version_of(run: PlaygroundRun) -> PromptVersion:
    if run.version is not None:
        return run.version
    draft = run.draft or {}
    version = PromptVersion(kind=draft.get("kind", "text"), body=draft.get("body", ""), config=draft.get("config", {}))
    prompt = run.prompt or Prompt(name="draft")
    prompt.prompt_type = draft.get("prompt_type") or prompt.prompt_type
    version.prompt = prompt
    return version


@transaction.atomic
def compare_start(
    *,
    user: User,
    prompt: Prompt | None,
    versions: list[PromptVersion],
    variables: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    draft: Draft | None = None,
) -> uuid.UUID:
    """Queue one run per version (the draft first, if any) on the same variables; returns the compare's id.

    The caller has checked that `user` may author. Each run is its own task, queued after commit.
    """
    overrides = check_overrides(overrides)
    if draft:
        check_params(draft.config)
    targets: list[PromptVersion | None] = ([None] if draft else []) + list(versions)
    if not targets:
        raise InvalidInput("Choose at least one version to run.", code="no_versions")
    if len(targets) > MAX_VERSIONS:
        raise InvalidInput(f"Compare at most {MAX_VERSIONS} versions at once.", code="too_many_versions")
    if not isinstance(variables, dict):
        raise InvalidInput("The variables must be an object with one entry per variable.", code="invalid_variables")
    if not provider_effective().base_url:
        raise ProviderNotConfigured(NO_PROVIDER)
    PlaygroundRun.objects.filter(
        created_at__lt=timezone.now() - timedelta(hours=settings.PLAYGROUND_KEEP_HOURS)
    ).delete()
    group = uuid.uuid4()
    draft_json = asdict(draft) if draft else None
    from experiments.tasks import playground_run_task  # tasks import this module

    for position, version in enumerate(targets):
        run = PlaygroundRun.objects.create(
            group=group,
            position=position,
            prompt=prompt,
            version=version,
            draft=None if version else draft_json,
            variables=variables,
            overrides=overrides,
            created_by=user,
        )
        broker.enqueue_on_commit(playground_run_task, run)
    return group


def run_execute(run_id: int) -> str:
    """The worker's part: claim the run, call the provider, store the answer or the error as a sentence."""
    now = timezone.now()
    if not PlaygroundRun.objects.filter(pk=run_id, state=PlaygroundState.QUEUED).update(
        state=PlaygroundState.RUNNING, started_at=now
    ):
        return "not queued"
    run = PlaygroundRun.objects.select_related("version", "prompt").get(pk=run_id)
    fields: dict[str, Any]
    try:
        result = playground_run(version=_version_of(run), variables=run.variables, overrides=run.overrides)
    except (ProviderError, RegistryError) as exc:
        fields = {"state": PlaygroundState.FAILED, "error": getattr(exc, "message", None) or str(exc)}
    else:
        fields = {
            "state": PlaygroundState.DONE,
            "output": result.output,
            "model": result.model,
            "latency_ms": result.latency_ms,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "cost_usd": result.cost_usd,
        }
    PlaygroundRun.objects.filter(pk=run_id, state=PlaygroundState.RUNNING).update(finished_at=timezone.now(), **fields)
    return str(fields["state"])


def _expire(runs: list[PlaygroundRun]) -> None:
    """Fail, with a sentence, the runs no worker picked up in time and those whose worker went silent."""
    now = timezone.now()
    pickup = settings.PLAYGROUND_PICKUP_SECONDS
    finish = settings.PLAYGROUND_TIMEOUT + 15
    for run in runs:
        if run.state == PlaygroundState.QUEUED and run.created_at < now - timedelta(seconds=pickup):
            error = f"No worker picked up the run within {pickup} s — is the worker running?"
        elif (
            run.state == PlaygroundState.RUNNING and run.started_at and run.started_at < now - timedelta(seconds=finish)
        ):
            error = f"The run did not finish within {finish:g} s: its worker may have stopped."
        else:
            continue
        if PlaygroundRun.objects.filter(pk=run.pk, state=run.state).update(
            state=PlaygroundState.FAILED, error=error, finished_at=now
        ):
            run.state, run.error = PlaygroundState.FAILED, error


@dataclass
class Column:
    run: PlaygroundRun
    diff: TextDiff | None  # of the first column's output (the baseline) and this one's; None until both are done
    baseline: bool

    @property
    def segments(self) -> list[Segment] | None:
        """The output as diff segments: the baseline shows what others lack (deleted), the others what they add."""
        if self.diff is None:
            return None
        return self.diff.left if self.baseline else self.diff.right


def compare_result(*, group: uuid.UUID, user: User) -> list[Column]:
    """The compare's runs, each with a word diff of its output against the first run's. Only their creator sees them,
    and Admins (to help: the variables may be someone's data, and an Admin may already read everything)."""
    query = PlaygroundRun.objects.filter(group=group).select_related("version", "prompt")
    runs = list(query if permissions.can_admin(user) else query.filter(created_by=user))
    _expire(runs)
    columns = []
    for i, run in enumerate(runs):
        first, second = (run, runs[1] if len(runs) > 1 else run) if i == 0 else (runs[0], run)
        both_done = first is not second and first.state == second.state == PlaygroundState.DONE
        diff = TextDiff("output", word_diff(first.output, second.output), first.output != second.output)
        columns.append(Column(run, diff if both_done else None, baseline=i == 0))
    return columns
