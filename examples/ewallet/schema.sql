-- One e-wallet shard. The generator creates it as wallet_00 ... wallet_07, two shards per
-- MariaDB instance. Ids are per-shard AUTO_INCREMENT, so they collide across shards.
CREATE TABLE account (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id     BIGINT UNSIGNED NOT NULL,
  currency    CHAR(3) NOT NULL DEFAULT 'IDR',
  balance     DECIMAL(20,4) NOT NULL DEFAULT 0,
  status      ENUM('active','frozen','closed') NOT NULL DEFAULT 'active',
  created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  UNIQUE KEY uk_user_currency (user_id, currency)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE merchant (
  id          INT NOT NULL AUTO_INCREMENT,
  name        VARCHAR(120) NOT NULL,
  category    VARCHAR(40) NOT NULL,
  settings    JSON,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE transfer (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  from_account BIGINT UNSIGNED NOT NULL,
  to_account  BIGINT UNSIGNED NOT NULL,
  amount      DECIMAL(20,4) NOT NULL,
  state       ENUM('pending','done','failed') NOT NULL,
  note        VARCHAR(200) CHARACTER SET utf8mb4 NULL,
  created_at  DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY idx_from (from_account, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE ledger_entry (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  transfer_id BIGINT UNSIGNED NOT NULL,
  account_id  BIGINT UNSIGNED NOT NULL,
  amount      DECIMAL(20,4) NOT NULL,
  kind        ENUM('debit','credit') NOT NULL,
  created_at  DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY idx_account (account_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Legacy table from the first version of the product: latin1 text.
CREATE TABLE customer_note_legacy (
  id          INT NOT NULL AUTO_INCREMENT,
  account_id  BIGINT UNSIGNED NOT NULL,
  note        VARCHAR(255) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

-- No primary key and no unique key: cannot be chunked or synced safely. Written by back-office
-- jobs only (not by transfers), so it is copy-only and the demo's workload leaves it alone.
CREATE TABLE audit_log (
  at          DATETIME NOT NULL,
  actor       VARCHAR(64) NOT NULL,
  action      VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The ledger derives the entry kind from the amount's sign. Triggers are not migrated (plan says
-- so): in ROW binlogs their effects arrive as row events, so sync replays them without it.
CREATE TRIGGER trg_ledger_kind BEFORE INSERT ON ledger_entry FOR EACH ROW
  SET NEW.kind = IF(NEW.amount < 0, 'debit', 'credit')
