"""The one exception the migration_version layer raises for bad input."""


class MigrationVersionError(Exception):
    """Bad input or a state django-cd refuses to change; the message says what to do.

    Commands turn it into a ``CommandError``. Nothing has been written when it
    is raised: every function validates first and writes last.
    """
