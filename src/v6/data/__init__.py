"""Live data that never dies quietly: a registry of subscriptions replayed onto the application's
own objects, stale feeds found, proportional responses to IB's data messages (issue 18).

Pure: ``specs`` (what each subscription asks for), ``feeds`` (each subscription's state and the
staleness policy), ``gaps`` (filling a bar series' outage), ``hours`` (liquid hours),
``responses`` (what each IB message calls for). asyncio glue: ``registry`` (the feeds, requested
onto their objects), ``watch`` (the watching task). The edge: ``ib_adapter`` (the only module
here that touches ib_async internals). The participant: ``live_data`` (:class:`LiveData`,
``manager.data``: the public API and the lifecycle seam; the manager composes it).
"""
