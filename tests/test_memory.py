"""How the server holds memory (cvdemo.memory): what it settles stays alive and out of the collector's walks,
and what a job leaves in a reference cycle is still freed by the trim after it."""
import gc
import weakref

from cvdemo import memory


class Node:
    pass


def test_settled_objects_live_on_outside_collections_and_a_jobs_cycles_are_still_freed():
    app = Node()
    app.blocks = [app]  # a cycle alive when the app settles (a block and its parent)
    memory.settle()
    assert gc.get_freeze_count() > 0 and not any(obj is app for obj in gc.get_objects())
    job = Node()
    job.model = [job]  # a job's model in a cycle (a module and its hooks), dropped when the job ends
    freed = weakref.ref(job)
    del job
    memory.trim()
    assert freed() is None and app.blocks[0] is app
