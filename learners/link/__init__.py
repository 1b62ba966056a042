"""The link between actors and the learner, in one room.

Everything a transition meets between an actor's control loop and the learner's replay cache, and
everything the weights meet on the way back: the wire protocol (``wire``), CurveZMQ security
(``security``), wake-ups (``wakeup``), the actor's end (``stream`` → ``batcher`` → ``spool`` →
``client``) and the learner's end (``server``, ``checks``, ``weights``). A batch of transitions
travels as the replay cache's own record (``learners.cache.batch``, record kind 2): the actor
spools it, the learner stores the frame as it arrived, so the codec lives with the cache.
"""
