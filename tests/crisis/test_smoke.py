from tests.conftest import login


def test_login_and_console(client, make_user):
    user = make_user("editor")
    login(client, user)
    response = client.get("/console/")
    assert response.status_code == 200
    assert "Incidenten" in response.get_data(as_text=True) or "Incidents" in response.get_data(as_text=True)
