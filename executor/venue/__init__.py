"""Venues behind one interface: paper and ccxt (see :mod:`executor.venue.base`)."""
