"""migrator: move fleets of MySQL/MariaDB instances into OceanBase, TiDB or MySQL."""

__version__ = "0.1.0"
