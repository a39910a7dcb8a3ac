"""The evaluation provider set by an Admin in the dashboard: the key encrypted, never shown, only sent to the base URL
it was entered for; environment variables win; Test connection against the local OpenAI-compatible stub."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from experiments.llm import LLMConfig, provider_effective
from experiments.models import ProviderSettings
from tests.fake_llm import FakeLLM

PAGE = "/experiments/provider/"
TEST = "/experiments/provider/test/"
KEY = "sk-live-0123456789abcdef"


@pytest.fixture
def no_env(settings):
    settings.LLM_BASE_URL = settings.LLM_API_KEY = settings.LLM_MODEL = ""


@pytest.fixture
def fake():
    with FakeLLM() as server:
        yield server


def test_admin_sets_the_provider_key_stored_encrypted_never_shown_and_tested(client, admin_user, no_env, fake):
    client.force_login(admin_user)
    r = client.post(PAGE, {"base_url": fake.base_url + "/", "model": "fake-model", "api_key": KEY})
    assert r.status_code == 302
    stored = ProviderSettings.objects.get()
    assert (stored.base_url, stored.model, stored.updated_by) == (fake.base_url, "fake-model", admin_user)
    assert KEY not in stored.api_key_encrypted and stored.api_key() == KEY
    assert KEY not in json.dumps(list(ProviderSettings.history.values()), default=str)  # history keeps no key
    page = client.get(PAGE).content.decode()
    assert KEY not in page and "A key is stored for" in page and 'name="api_key"' in page
    assert (
        LLMConfig.for_version({}).base_url,
        LLMConfig.for_version({}).api_key,
        LLMConfig.for_version({"model": "m2"}).model,
    ) == (fake.base_url, KEY, "m2")

    result = client.post(TEST, HTTP_HX_REQUEST="true").content.decode()
    assert f"Connected to {fake.base_url}: model fake-model answered in" in result and "<html" not in result
    (call,) = fake.requests
    assert call["auth"] == f"Bearer {KEY}" and json.loads(call["body"])["model"] == "fake-model"

    # Saving again without a key keeps it; an empty form field never shows or overwrites it.
    client.post(PAGE, {"base_url": fake.base_url, "model": "other-model", "api_key": ""})
    assert ProviderSettings.objects.get().api_key() == KEY


def test_a_key_is_never_sent_to_another_base_url(client, admin_user, no_env, fake):
    client.force_login(admin_user)
    client.post(PAGE, {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": KEY})
    r = client.post(PAGE, {"base_url": fake.base_url, "model": "m", "api_key": ""}, follow=True)
    assert "removed because the base URL changed" in r.content.decode()
    assert provider_effective().api_key == "" and ProviderSettings.objects.get().api_key_encrypted == ""
    assert "answered in" in client.post(TEST).content.decode()
    assert fake.requests[0]["auth"] is None


def test_a_failed_test_says_why(client, admin_user, no_env):
    client.force_login(admin_user)
    client.post(PAGE, {"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    page = client.post(TEST).content.decode()
    assert "could not connect" in page and "127.0.0.1:9" in page


def test_bad_input_names_the_field_and_saves_nothing(client, admin_user, no_env):
    client.force_login(admin_user)
    r = client.post(PAGE, {"base_url": "ftp://example.com", "model": "m", "api_key": KEY})
    assert r.status_code == 200 and "Enter an http(s) URL" in r.content.decode()
    assert not ProviderSettings.objects.exists()


def test_only_admins(client, deployer, no_env):
    client.force_login(deployer)
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"base_url": "http://example.com/v1", "api_key": KEY}).status_code == 403
    assert client.post(TEST).status_code == 403
    assert not ProviderSettings.objects.exists()


def test_environment_variables_win(client, admin_user, settings):
    settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_MODEL = "http://env.example/v1", "sk-env", "env-model"
    client.force_login(admin_user)
    client.post(PAGE, {"base_url": "http://dashboard.example/v1", "model": "m", "api_key": KEY})
    effective = provider_effective()
    assert (effective.base_url, effective.api_key, effective.model, effective.source) == (
        "http://env.example/v1",
        "sk-env",
        "env-model",
        "environment",
    )
    page = client.get(PAGE).content.decode()
    assert "from the environment" in page and "sk-env" not in page and KEY not in page


def test_a_changed_secret_key_makes_the_stored_key_unreadable_not_wrong(client, admin_user, no_env, settings):
    client.force_login(admin_user)
    client.post(PAGE, {"base_url": "http://127.0.0.1:9/v1", "api_key": KEY})
    settings.SECRET_KEY = "another-secret-key-entirely-" + "x" * 30
    client.force_login(admin_user)
    assert provider_effective().api_key == ""
    assert "cannot be decrypted" in client.get(PAGE).content.decode()


def test_evaluations_refuse_to_start_without_a_provider_and_say_where_to_set_it(db, no_env):
    from experiments.llm import LLMClient, ProviderError

    with pytest.raises(ProviderError, match="an Admin sets it on the Evaluation provider page"):
        LLMClient(LLMConfig.for_version({}))
    assert reverse("experiments:provider") == PAGE
