"""The PostgreSQL backend the project runs on: Django's, plus the tenant's row-level-security settings.

Settings name it as ``ENGINE = "customers.database"``.
"""
