-- form: mysql8
-- expect: blocking
-- rules: engine.remote
CREATE TABLE `remote_t` (
  `id` int NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=FEDERATED DEFAULT CHARSET=utf8mb4 CONNECTION='mysql://u@h:3306/db/t'
