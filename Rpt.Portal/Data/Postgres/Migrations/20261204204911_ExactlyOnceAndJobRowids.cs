using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Rpt.Portal.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class ExactlyOnceAndJobRowids : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // Exactly-once for all time on PostgreSQL is the database's (any number of writers); and job rollups get the
            // stable rowid SQLite gives every row, which calls reference (job_ref) and job pages page by.
            migrationBuilder.AddColumn<long>(
                name: "rowid",
                table: "usage_jobs",
                type: "bigint",
                nullable: false)
                .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn);

            migrationBuilder.CreateIndex(
                name: "ux_usage_jobs_rowid",
                table: "usage_jobs",
                column: "rowid",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ux_usage_events_tenant_event",
                table: "usage_events",
                columns: new[] { "tenant_id", "event_id" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ux_usage_jobs_rowid",
                table: "usage_jobs");

            migrationBuilder.DropIndex(
                name: "ux_usage_events_tenant_event",
                table: "usage_events");

            migrationBuilder.DropColumn(
                name: "rowid",
                table: "usage_jobs");
        }
    }
}
