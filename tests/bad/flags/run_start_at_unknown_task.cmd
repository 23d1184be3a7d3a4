run
../marker.yaml
-i
{lab}
--limit
h1
--start-at-task
install tomcat
