"""`next` under contention on PostgreSQL: analysts asking at the same instant never get the same task.

Each thread has its own database connection and the writes really commit (`committed_db`), so the row locks
(SELECT ... FOR UPDATE SKIP LOCKED) really race.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from django.db import connection

from appliance.datasets.actions import add_member
from appliance.labeling.actions import add_project_member, create_tasks, next_task
from appliance.labeling.models import Task, TaskState
from tests.conftest import needs_postgres
from tests.datasets.conftest import person
from tests.labeling.conftest import build_crew, import_images, records

ANALYSTS = 16
EXTRA_IMAGES = 7  # 3 + 7 = 10 tasks for 16 analysts: some must come back empty-handed


@needs_postgres()
def test_concurrent_next_never_hands_one_task_to_two_analysts(committed_db: None) -> None:
    crew = build_crew()
    import_images(crew.dataset, crew.owner, list(range(10, 10 + EXTRA_IMAGES)))
    create_tasks(crew.owner, project=crew.project)
    analysts = []
    for index in range(ANALYSTS):
        analyst = person(f"analyst{index:02d}", "analyst", "SECRET", ["ALPHA"])
        add_member(crew.owner, dataset=crew.dataset, member=analyst)
        add_project_member(crew.owner, project=crew.project, member=analyst)
        analysts.append(analyst)
    barrier = Barrier(ANALYSTS)

    def ask(index: int) -> int | None:
        try:
            barrier.wait(timeout=30)
            task = next_task(analysts[index], project=crew.project)
            return None if task is None else task.pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=ANALYSTS) as pool:
        handed = list(pool.map(ask, range(ANALYSTS)))
    given = [pk for pk in handed if pk is not None]
    assert len(given) == len(set(given)) == 10
    held = Task.objects.filter(project=crew.project, state=TaskState.IN_PROGRESS)
    assert held.count() == 10
    assert len({task.lock_holder_id for task in held}) == 10
    assert len(records("task.lock")) == 10
