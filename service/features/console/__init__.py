"""Staff console: server-rendered pages (Chinese UI) mounted under /console in the service's FastAPI app.

`service.features.console.install.install_console(app)` adds the routes, the login redirect and the security
headers. Other code uses `service.features.console.auth.create_user` to create the first admin (`pension-cert
console create-user`). This file imports nothing: every module of the console imports its siblings through the
package (`from service.features.console import audit_chain`), so an import here would be a cycle.
"""
