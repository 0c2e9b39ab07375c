"""Getting and vetting image bytes: URL policy, fetch, fetch cache, sniffing and decoding.

May import: workers.protocol, config.
"""
