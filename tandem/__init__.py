"""tandem: command line, process orchestration and shared runtime helpers.

Layering (one-way): ``tandem.cli``/``tandem.paper``/``tandem.bench`` → ``brain``, ``executor`` →
``protocol``; ``tandem.runtime``, ``tandem.settings``, ``tandem.marketdata``, ``tandem.ports``,
``tandem.rundir``, ``tandem.journalfile`` and ``tandem.data`` are leaves that both apps use.
"""
