from promptreg.management.commands.up import Command


def test_each_start_revokes_the_previous_demo_key_at_once(client, publish, django_capture_on_commit_callbacks):
    publish()
    first = Command()._demo_key()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {first}"}
    assert client.get("/api/v1/prompts/support-system?label=latest", **auth).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        second = Command()._demo_key()
    assert client.get("/api/v1/prompts/support-system?label=latest", **auth).status_code == 401
    assert client.get("/api/v1/prompts/support-system?label=latest", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200
