"""A local Binance-compatible exchange (spot and USDⓈ-M) that ccxt reaches over HTTPS on loopback."""
