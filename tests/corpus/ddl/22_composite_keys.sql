-- form: mariadb
CREATE TABLE `ledger` (
  account_id bigint NOT NULL,
  seq int unsigned NOT NULL,
  ref varchar(64) NOT NULL,
  note varchar(255) DEFAULT NULL COMMENT 'free text, "quoted"',
  PRIMARY KEY (account_id, seq),
  UNIQUE KEY uk_ref (ref),
  KEY ix_note (note(16)) COMMENT 'prefix index',
  KEY ix_hash (ref) USING HASH
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='payments ledger'
