"""tandem: command line, process orchestration and shared runtime helpers.

Layering (one-way): ``tandem.cli``/``tandem.paper``/``tandem.bench`` → ``brain``, ``executor`` →
``protocol``; ``tandem.runtime`` and ``tandem.data`` are leaves that both apps use.
"""
