"""The reconcile engine (gather, plan, execute, status) and the kinds plugged into it.

reconcile/engine.py          the four stages' shared machinery, Outcome, Finding, Plan
reconcile/gather.py          cached reads, the runtime Context, shared gathering
reconcile/prober.py          background health probes of managed endpoints
reconcile/llmdeployment.py   placement, make-before-break, model status
reconcile/chatendpoint.py    backends, gateway sites, cross-cluster paths, endpoint status
reconcile/mlpipeline/        training runs, owned model and endpoint, drift checks
"""
