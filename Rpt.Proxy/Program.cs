// Rpt Proxy: the load balancer in front of several Rpt Portal instances (docs/DEPLOYMENT.md).
// Everything it does is in appsettings.json under ReverseProxy; the portals' addresses come from the environment,
// e.g. ReverseProxy__Clusters__portals__Destinations__a__Address=http://portal-a:8080/.
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));
var app = builder.Build();
app.MapGet("/proxy/healthz", () => Results.Text("ok"));
app.MapReverseProxy();
app.Run();
