"""Storage: SQLAlchemy models, Alembic migrations and the repository used by the CLI and web.

SQLite file by default (WAL), PostgreSQL when ``LDNCARE_DATABASE_URL`` points at one.
"""
