<%@ page contentType="text/plain; charset=UTF-8" import="java.io.*" %><%
    // Health check for the load balancer and deploy gates: answers once the webapp is deployed,
    // with the release id so a gate can tell an old release from the new one.
    String release = "unknown";
    try (InputStream in = application.getResourceAsStream("/WEB-INF/release.txt")) {
        if (in != null) {
            release = new BufferedReader(new InputStreamReader(in, "UTF-8")).readLine().trim();
        }
    }
    out.println("ok " + release);
%>
