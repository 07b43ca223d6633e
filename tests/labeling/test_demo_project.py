"""`manage.py demo_project`: the demo analyst finds a project over the demo documents, ready to label, once."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from appliance.accounts.models import User
from appliance.labeling.actions import next_task
from appliance.labeling.models import Project


@pytest.mark.django_db
def test_the_demo_project_is_ready_for_the_demo_analyst_and_made_once(capsys) -> None:
    call_command("demo_users")
    with pytest.raises(CommandError, match="demo_data"):
        call_command("demo_project")
    call_command("demo_data", "--count", "2")
    call_command("demo_project")
    project = Project.objects.get(name="Demo document layout")
    classes = project.current_schema().classes  # type: ignore[union-attr]
    assert [c["name"] for c in classes][:4] == ["text", "title", "figure", "table"]
    assert len({c["shortcut"] for c in classes}) == len(classes)
    assert project.tasks.count() == 2
    task = next_task(User.objects.get(username="demo-analyst"), project=project)
    assert task is not None
    call_command("demo_project")
    assert "left unchanged" in capsys.readouterr().out
    assert Project.objects.filter(name="Demo document layout").count() == 1
