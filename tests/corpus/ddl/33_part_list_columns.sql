-- form: mariadb
CREATE TABLE `p_lcols` (
  id int NOT NULL,
  country char(2) NOT NULL,
  PRIMARY KEY (id, country)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY LIST COLUMNS (country) (
  PARTITION p_id VALUES IN ('ID', 'MY'),
  PARTITION p_other VALUES IN ('SG', 'TH', 'VN')
)
