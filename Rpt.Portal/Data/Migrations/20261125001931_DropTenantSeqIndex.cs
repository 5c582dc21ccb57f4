using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class DropTenantSeqIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_usage_events_tenant_seq",
                table: "usage_events");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "ix_usage_events_tenant_seq",
                table: "usage_events",
                column: "tenant_id");
        }
    }
}
