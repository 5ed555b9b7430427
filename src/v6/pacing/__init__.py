"""Request pacing: every request of the session passes one scheduler with priority lanes, so IB's
pacing rules (:mod:`v6.protocol.pacing`) are never tripped.

Pure: ``windows`` (sliding windows, injected clock), ``budget`` (IB's rules as windows and caps).
asyncio glue: ``scheduler`` (the lanes and the one timer). The edge: ``ib_adapter`` (the only
module here that touches ib_async internals). The participant: ``participant``
(:class:`RequestPacing`, the lifecycle seam; the manager composes it).
"""
