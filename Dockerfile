# syntax=docker/dockerfile:1
# Build stage: the .NET SDK plus Node (the portal's charts come from the apexcharts npm package).
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Rpt.Portal.sln Directory.Build.props ./
COPY Rpt.Portal/Rpt.Portal.csproj Rpt.Portal/
RUN dotnet restore Rpt.Portal/Rpt.Portal.csproj
COPY Rpt.Portal/ Rpt.Portal/
RUN dotnet publish Rpt.Portal/Rpt.Portal.csproj -c Release -o /app --no-restore

# Runtime stage: ASP.NET Core only, as a non-root user, on port 8080.
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app ./
RUN mkdir -p /data && chown -R app:app /data
USER app
ENV ASPNETCORE_URLS=http://+:8080 \
    ConnectionStrings__Rpt="Data Source=/data/rpt.db"
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["dotnet", "Rpt.Portal.dll"]
