"""An FK-heavy schema in the style of MySQL's sakila sample, for foreign-key tests.

17 tables, 26 foreign keys: chains 5 deep (country -> city -> address -> customer -> rental ->
payment), a cycle (store.manager_staff_id -> staff, staff.store_id -> store), two
self-references (category.parent_id, staff.reports_to), a composite key
(film_actor_note -> film_actor), and every action InnoDB enforces: ON DELETE CASCADE,
ON DELETE SET NULL, ON UPDATE CASCADE, ON UPDATE SET NULL, RESTRICT and NO ACTION.

`FK_SCHEMA_DDL` lists the CREATE TABLE statements in an order the source accepts with
`foreign_key_checks=0` (the cycle has no order without it). `load_fk_schema` creates the
database and fills it deterministically (same rows for the same `rows_per_table`).

FK_CASCADES lists the cascading foreign keys as (child, child columns, parent, parent columns,
on_delete, on_update), for tests that want to reason about them without parsing DDL.
"""

from __future__ import annotations

from typing import Any

FK_TABLES = [
    "country", "city", "address", "language", "category", "film", "film_text", "actor", "film_actor",
    "film_actor_note", "film_category", "store", "staff", "inventory", "customer", "rental", "payment",
]

FK_SCHEMA_DDL: list[str] = [
    """CREATE TABLE country (
  country_id INT NOT NULL AUTO_INCREMENT,
  country VARCHAR(50) NOT NULL,
  last_update DATETIME NOT NULL,
  PRIMARY KEY (country_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE city (
  city_id INT NOT NULL AUTO_INCREMENT,
  city VARCHAR(50) NOT NULL,
  country_id INT NOT NULL,
  PRIMARY KEY (city_id),
  KEY idx_fk_country_id (country_id),
  CONSTRAINT fk_city_country FOREIGN KEY (country_id) REFERENCES country (country_id)
    ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE address (
  address_id INT NOT NULL AUTO_INCREMENT,
  address VARCHAR(50) NOT NULL,
  district VARCHAR(20) DEFAULT NULL,
  city_id INT NOT NULL,
  postal_code VARCHAR(10) DEFAULT NULL,
  PRIMARY KEY (address_id),
  KEY idx_fk_city_id (city_id),
  CONSTRAINT fk_address_city FOREIGN KEY (city_id) REFERENCES city (city_id)
    ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE language (
  language_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT,
  name CHAR(20) NOT NULL,
  PRIMARY KEY (language_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE category (
  category_id INT NOT NULL AUTO_INCREMENT,
  name VARCHAR(25) NOT NULL,
  parent_id INT DEFAULT NULL,
  PRIMARY KEY (category_id),
  KEY idx_parent (parent_id),
  CONSTRAINT fk_category_parent FOREIGN KEY (parent_id) REFERENCES category (category_id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE film (
  film_id INT NOT NULL AUTO_INCREMENT,
  title VARCHAR(128) NOT NULL,
  release_year SMALLINT DEFAULT NULL,
  language_id TINYINT UNSIGNED NOT NULL,
  original_language_id TINYINT UNSIGNED DEFAULT NULL,
  rental_rate DECIMAL(4,2) NOT NULL DEFAULT 4.99,
  rating ENUM('G','PG','PG-13','R','NC-17') DEFAULT 'G',
  PRIMARY KEY (film_id),
  KEY idx_fk_language_id (language_id),
  KEY idx_fk_original_language_id (original_language_id),
  CONSTRAINT fk_film_language FOREIGN KEY (language_id) REFERENCES language (language_id)
    ON DELETE RESTRICT ON UPDATE CASCADE,
  CONSTRAINT fk_film_language_original FOREIGN KEY (original_language_id) REFERENCES language (language_id)
    ON DELETE SET NULL ON UPDATE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE film_text (
  film_id INT NOT NULL,
  title VARCHAR(255) NOT NULL,
  description TEXT,
  PRIMARY KEY (film_id),
  CONSTRAINT fk_film_text_film FOREIGN KEY (film_id) REFERENCES film (film_id)
    ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE actor (
  actor_id INT NOT NULL AUTO_INCREMENT,
  first_name VARCHAR(45) NOT NULL,
  last_name VARCHAR(45) NOT NULL,
  PRIMARY KEY (actor_id),
  KEY idx_actor_last_name (last_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE film_actor (
  actor_id INT NOT NULL,
  film_id INT NOT NULL,
  billing SMALLINT NOT NULL DEFAULT 0,
  PRIMARY KEY (actor_id, film_id),
  KEY idx_fk_film_id (film_id),
  CONSTRAINT fk_film_actor_actor FOREIGN KEY (actor_id) REFERENCES actor (actor_id)
    ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT fk_film_actor_film FOREIGN KEY (film_id) REFERENCES film (film_id)
    ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE film_actor_note (
  note_id INT NOT NULL AUTO_INCREMENT,
  actor_id INT NOT NULL,
  film_id INT NOT NULL,
  note VARCHAR(100) NOT NULL,
  PRIMARY KEY (note_id),
  KEY idx_fk_film_actor (actor_id, film_id),
  CONSTRAINT fk_note_film_actor FOREIGN KEY (actor_id, film_id) REFERENCES film_actor (actor_id, film_id)
    ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE film_category (
  film_id INT NOT NULL,
  category_id INT NOT NULL,
  PRIMARY KEY (film_id, category_id),
  KEY fk_film_category_category (category_id),
  CONSTRAINT fk_film_category_film FOREIGN KEY (film_id) REFERENCES film (film_id)
    ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT fk_film_category_category FOREIGN KEY (category_id) REFERENCES category (category_id)
    ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE store (
  store_id INT NOT NULL AUTO_INCREMENT,
  manager_staff_id INT DEFAULT NULL,
  address_id INT NOT NULL,
  PRIMARY KEY (store_id),
  UNIQUE KEY idx_unique_manager (manager_staff_id),
  KEY idx_fk_address_id (address_id),
  CONSTRAINT fk_store_staff FOREIGN KEY (manager_staff_id) REFERENCES staff (staff_id)
    ON DELETE SET NULL ON UPDATE CASCADE,
  CONSTRAINT fk_store_address FOREIGN KEY (address_id) REFERENCES address (address_id)
    ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE staff (
  staff_id INT NOT NULL AUTO_INCREMENT,
  first_name VARCHAR(45) NOT NULL,
  last_name VARCHAR(45) NOT NULL,
  address_id INT NOT NULL,
  store_id INT NOT NULL,
  reports_to INT DEFAULT NULL,
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (staff_id),
  KEY idx_fk_store_id (store_id),
  KEY idx_fk_address_id (address_id),
  KEY idx_reports_to (reports_to),
  CONSTRAINT fk_staff_store FOREIGN KEY (store_id) REFERENCES store (store_id)
    ON DELETE RESTRICT ON UPDATE CASCADE,
  CONSTRAINT fk_staff_address FOREIGN KEY (address_id) REFERENCES address (address_id)
    ON DELETE RESTRICT ON UPDATE CASCADE,
  CONSTRAINT fk_staff_reports_to FOREIGN KEY (reports_to) REFERENCES staff (staff_id)
    ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE inventory (
  inventory_id INT NOT NULL AUTO_INCREMENT,
  film_id INT NOT NULL,
  store_id INT NOT NULL,
  PRIMARY KEY (inventory_id),
  KEY idx_fk_film_id (film_id),
  KEY idx_store_id_film_id (store_id, film_id),
  CONSTRAINT fk_inventory_film FOREIGN KEY (film_id) REFERENCES film (film_id)
    ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT fk_inventory_store FOREIGN KEY (store_id) REFERENCES store (store_id)
    ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE customer (
  customer_id INT NOT NULL AUTO_INCREMENT,
  store_id INT NOT NULL,
  first_name VARCHAR(45) NOT NULL,
  last_name VARCHAR(45) NOT NULL,
  email VARCHAR(50) DEFAULT NULL,
  address_id INT NOT NULL,
  create_date DATETIME NOT NULL,
  PRIMARY KEY (customer_id),
  KEY idx_fk_store_id (store_id),
  KEY idx_fk_address_id (address_id),
  CONSTRAINT fk_customer_store FOREIGN KEY (store_id) REFERENCES store (store_id)
    ON DELETE RESTRICT ON UPDATE RESTRICT,
  CONSTRAINT fk_customer_address FOREIGN KEY (address_id) REFERENCES address (address_id)
    ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE rental (
  rental_id INT NOT NULL AUTO_INCREMENT,
  rental_date DATETIME NOT NULL,
  inventory_id INT NOT NULL,
  customer_id INT NOT NULL,
  return_date DATETIME DEFAULT NULL,
  staff_id INT DEFAULT NULL,
  PRIMARY KEY (rental_id),
  UNIQUE KEY uq_rental (rental_date, inventory_id, customer_id),
  KEY idx_fk_inventory_id (inventory_id),
  KEY idx_fk_customer_id (customer_id),
  KEY idx_fk_staff_id (staff_id),
  CONSTRAINT fk_rental_inventory FOREIGN KEY (inventory_id) REFERENCES inventory (inventory_id)
    ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT fk_rental_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id)
    ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT fk_rental_staff FOREIGN KEY (staff_id) REFERENCES staff (staff_id)
    ON DELETE SET NULL ON UPDATE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE payment (
  payment_id INT NOT NULL AUTO_INCREMENT,
  customer_id INT NOT NULL,
  staff_id INT NOT NULL,
  rental_id INT DEFAULT NULL,
  amount DECIMAL(5,2) NOT NULL,
  payment_date DATETIME NOT NULL,
  PRIMARY KEY (payment_id),
  KEY idx_fk_staff_id (staff_id),
  KEY idx_fk_customer_id (customer_id),
  KEY fk_payment_rental (rental_id),
  CONSTRAINT fk_payment_rental FOREIGN KEY (rental_id) REFERENCES rental (rental_id)
    ON DELETE SET NULL ON UPDATE CASCADE,
  CONSTRAINT fk_payment_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id)
    ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT fk_payment_staff FOREIGN KEY (staff_id) REFERENCES staff (staff_id)
    ON DELETE NO ACTION ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
]

# (child, child columns, parent, parent columns, on_delete, on_update) for every FK that
# cascades or sets NULL on delete or update.
FK_CASCADES: list[tuple[str, tuple[str, ...], str, tuple[str, ...], str, str]] = [
    ("city", ("country_id",), "country", ("country_id",), "RESTRICT", "CASCADE"),
    ("address", ("city_id",), "city", ("city_id",), "RESTRICT", "CASCADE"),
    ("category", ("parent_id",), "category", ("category_id",), "CASCADE", "RESTRICT"),
    ("film", ("language_id",), "language", ("language_id",), "RESTRICT", "CASCADE"),
    ("film", ("original_language_id",), "language", ("language_id",), "SET NULL", "SET NULL"),
    ("film_text", ("film_id",), "film", ("film_id",), "CASCADE", "CASCADE"),
    ("film_actor", ("actor_id",), "actor", ("actor_id",), "CASCADE", "CASCADE"),
    ("film_actor", ("film_id",), "film", ("film_id",), "CASCADE", "CASCADE"),
    ("film_actor_note", ("actor_id", "film_id"), "film_actor", ("actor_id", "film_id"), "CASCADE", "CASCADE"),
    ("film_category", ("film_id",), "film", ("film_id",), "CASCADE", "CASCADE"),
    ("film_category", ("category_id",), "category", ("category_id",), "CASCADE", "CASCADE"),
    ("store", ("manager_staff_id",), "staff", ("staff_id",), "SET NULL", "CASCADE"),
    ("store", ("address_id",), "address", ("address_id",), "RESTRICT", "CASCADE"),
    ("staff", ("store_id",), "store", ("store_id",), "RESTRICT", "CASCADE"),
    ("staff", ("address_id",), "address", ("address_id",), "RESTRICT", "CASCADE"),
    ("staff", ("reports_to",), "staff", ("staff_id",), "SET NULL", "RESTRICT"),
    ("inventory", ("film_id",), "film", ("film_id",), "CASCADE", "CASCADE"),
    ("inventory", ("store_id",), "store", ("store_id",), "RESTRICT", "CASCADE"),
    ("customer", ("address_id",), "address", ("address_id",), "RESTRICT", "CASCADE"),
    ("rental", ("inventory_id",), "inventory", ("inventory_id",), "CASCADE", "CASCADE"),
    ("rental", ("customer_id",), "customer", ("customer_id",), "CASCADE", "CASCADE"),
    ("rental", ("staff_id",), "staff", ("staff_id",), "SET NULL", "SET NULL"),
    ("payment", ("rental_id",), "rental", ("rental_id",), "SET NULL", "CASCADE"),
    ("payment", ("customer_id",), "customer", ("customer_id",), "CASCADE", "CASCADE"),
    ("payment", ("staff_id",), "staff", ("staff_id",), "NO ACTION", "CASCADE"),
]
# The one FK with no cascading action at all (RESTRICT both ways), for completeness.
FK_RESTRICT_ONLY = [("customer", ("store_id",), "store", ("store_id",), "RESTRICT", "RESTRICT")]


def _day(i: int) -> str:
    return f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{(i * 7) % 60:02d}:{(i * 13) % 60:02d}"


def fk_schema_rows(n: int = 20) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Deterministic rows per table: {table: (columns, rows)}; every reference resolves.
    `n` rows per table (inventory, rental and payment get 2n); n >= 4."""
    if n < 4:
        raise ValueError("fk_schema_rows needs n >= 4")
    r = range(1, n + 1)
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    rows["country"] = (["country_id", "country", "last_update"], [(i, f"Country {i} ü", _day(i)) for i in r])
    rows["city"] = (["city_id", "city", "country_id"], [(i, f"City {i}", i % n + 1) for i in r])
    rows["address"] = (["address_id", "address", "district", "city_id", "postal_code"],
                       [(i, f"{i} Main St", None if i % 5 == 0 else f"D{i % 7}", (i * 3) % n + 1, f"{10000 + i}")
                        for i in r])
    rows["language"] = (["language_id", "name"], [(i, f"lang{i}") for i in r])
    rows["category"] = (["category_id", "name", "parent_id"],
                        [(i, f"cat{i}", None if i <= 3 else (i - 1) // 3) for i in r])
    rows["film"] = (["film_id", "title", "release_year", "language_id", "original_language_id", "rental_rate", "rating"],
                    [(i, f"FILM {i}", 1990 + i % 30, i % n + 1, None if i % 3 == 0 else (i * 2) % n + 1,
                      f"{(i % 5) + 0.99:.2f}", ["G", "PG", "PG-13", "R", "NC-17"][i % 5]) for i in r])
    rows["film_text"] = (["film_id", "title", "description"],
                         [(i, f"FILM {i}", None if i % 4 == 0 else f"A story number {i}") for i in r])
    rows["actor"] = (["actor_id", "first_name", "last_name"], [(i, f"First{i}", f"Last{i % 7}") for i in r])
    pairs: list[tuple[int, int]] = []
    for i in r:
        for p in ((i % n + 1, (i * 7) % n + 1), (i % n + 1, (i * 7 + 3) % n + 1)):
            if p not in pairs:
                pairs.append(p)
    rows["film_actor"] = (["actor_id", "film_id", "billing"], [(a, f, k % 4) for k, (a, f) in enumerate(pairs)])
    rows["film_actor_note"] = (["note_id", "actor_id", "film_id", "note"],
                               [(k + 1, a, f, f"note {k}") for k, (a, f) in enumerate(pairs[:n])])
    rows["film_category"] = (["film_id", "category_id"], [(i, (i * 5) % n + 1) for i in r])
    rows["store"] = (["store_id", "manager_staff_id", "address_id"], [(i, i if i % 4 else None, i) for i in r])
    rows["staff"] = (["staff_id", "first_name", "last_name", "address_id", "store_id", "reports_to", "active"],
                     [(i, f"Staff{i}", f"S{i % 3}", (i * 2) % n + 1, i % n + 1, None if i == 1 else i // 2, i % 2)
                      for i in r])
    r2 = range(1, 2 * n + 1)
    rows["inventory"] = (["inventory_id", "film_id", "store_id"], [(i, i % n + 1, (i * 3) % n + 1) for i in r2])
    rows["customer"] = (["customer_id", "store_id", "first_name", "last_name", "email", "address_id", "create_date"],
                        [(i, (i * 7) % n + 1, f"Cust{i}", f"C{i % 9}", None if i % 6 == 0 else f"c{i}@example.com",
                          (i * 5) % n + 1, _day(i)) for i in r])
    rows["rental"] = (["rental_id", "rental_date", "inventory_id", "customer_id", "return_date", "staff_id"],
                      [(i, _day(i), i % (2 * n) + 1, (i * 3) % n + 1, None if i % 3 == 0 else _day(i + 1),
                        None if i % 5 == 0 else i % n + 1) for i in r2])
    rows["payment"] = (["payment_id", "customer_id", "staff_id", "rental_id", "amount", "payment_date"],
                       [(i, (i * 3) % n + 1, i % n + 1, None if i % 7 == 0 else i, f"{(i % 10) + 0.99:.2f}", _day(i))
                        for i in r2])
    return rows


def load_fk_schema(conn, db: str, rows_per_table: int = 20) -> dict[str, int]:
    """Create database `db` on the (MariaDB/MySQL) connection, the 17 tables of FK_SCHEMA_DDL in
    it, and deterministic rows; returns {table: row count}. Runs with foreign_key_checks=0 for
    the cycle (store <-> staff) and turns the checks back on afterwards; the data satisfies
    every constraint."""
    from migrator.db import quote_ident

    data = fk_schema_rows(rows_per_table)
    with conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0")
        try:
            cur.execute(f"CREATE DATABASE {quote_ident(db)}")
            cur.execute(f"USE {quote_ident(db)}")
            for ddl in FK_SCHEMA_DDL:
                cur.execute(ddl)
            for table in FK_TABLES:
                cols, values = data[table]
                col_list = ", ".join(quote_ident(c) for c in cols)
                marks = ", ".join(["%s"] * len(cols))
                cur.executemany(f"INSERT INTO {quote_ident(table)} ({col_list}) VALUES ({marks})", values)
            conn.commit()
        finally:
            cur.execute("SET SESSION foreign_key_checks = 1")
    return {t: len(data[t][1]) for t in FK_TABLES}
