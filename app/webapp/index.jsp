<%@ page contentType="text/plain; charset=UTF-8" import="javax.naming.InitialContext,javax.sql.DataSource,java.sql.*,java.io.*" %><%
    // The shop's sample page: which release answers, on which app host, and a row read from the
    // database through the load balancer's TCP proxy (the JNDI resource jdbc/shop).
    String release = "unknown";
    try (InputStream in = application.getResourceAsStream("/WEB-INF/release.txt")) {
        if (in != null) {
            release = new BufferedReader(new InputStreamReader(in, "UTF-8")).readLine().trim();
        }
    }
    out.println("release: " + release);
    out.println("app: " + java.net.InetAddress.getLocalHost().getHostName());
    try {
        DataSource ds = (DataSource) new InitialContext().lookup("java:comp/env/jdbc/shop");
        try (Connection c = ds.getConnection();
             Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT value, @@hostname FROM settings WHERE name = 'greeting'")) {
            if (rs.next()) {
                out.println("greeting: " + rs.getString(1));
                out.println("db: " + rs.getString(2));
            } else {
                out.println("greeting: (no row)");
            }
        }
    } catch (Exception e) {
        response.setStatus(503);
        out.println("database: " + e);
    }
%>
