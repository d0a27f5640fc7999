"""tandem: the command line and the orchestration on top of both processes.

Layer 4 of 4 (``protocol`` → ``foundation`` → ``brain`` | ``executor`` → ``tandem``; imports point
down only, checked by the import-linter contracts in ``pyproject.toml``): ``cli`` (the ``tandem``
command), ``paper`` (both processes as children, then the report; ``progress`` draws its bar,
``children`` starts and watches them, ``warm`` has them importing before the inputs are checked,
``localvenue`` finds a local exchange to run beside them), ``runinputs`` → ``runreport``
(report.png and report.html), ``keygen``.
"""
