"""Where finished files go so the web host can serve them: local and SFTP stores.

May import: workers.protocol, config.
"""
