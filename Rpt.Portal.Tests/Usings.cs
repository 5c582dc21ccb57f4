global using Xunit;
global using Rpt.Portal.Tests.Support;
global using Rpt.Portal.Tenants;
