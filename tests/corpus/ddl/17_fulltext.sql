-- form: mariadb
CREATE TABLE `articles` (
  id int NOT NULL,
  title varchar(200) NOT NULL,
  body text,
  PRIMARY KEY (id),
  FULLTEXT KEY ft_title_body (title, body)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
